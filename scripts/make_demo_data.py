"""Writes rf_mcp/demo_data/: a self-written technical support knowledge base for ``rf-mcp demo``.

    python scripts/make_demo_data.py            # rewrites corpus.jsonl, queries.jsonl, qrels.tsv (fixed seed)

Five appliance and device lines (dishwashers, washing machines, routers, label printers, heat pumps), several models
each. Every (model, component, failure) has a troubleshooting article with its own error code ("E-4312") and the
spare part it replaces ("part 481-2207"); every (model, component) has a parts-catalogue entry; some articles have a
technician's field note. The articles of one component read nearly the same across models and codes: what tells them
apart are the identifiers, which a small dense embedding model blurs and BM25 matches exactly.

Queries are written from the construction, and so are the judgments (never from search results):
* code queries ("what does E-4312 mean"): the article with that code 2, its field notes 1;
* part queries ("which models take part 481-2207"): the catalogue entry of that part 2, the articles that replace it 1;
* symptom queries (model and symptom in words, no identifier): the article for that model, component and failure 2.
Train and test queries are about different articles. All text is original, released under Apache-2.0.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 19
OUT = Path(__file__).resolve().parent.parent / "rf_mcp" / "demo_data"
N_TRAIN, N_TEST = 120, 40
KINDS = ("code", "code", "part", "symptom")  # the query mix: half code, a quarter part, a quarter symptom

LINES = {
    "dishwasher": ("Halden", ["HX-40", "HX-45", "HX-60", "HX-62", "HX-80"], {
        "drain pump": ("water stays in the tub at the end of the cycle", "the pump hums but the water drains slowly"),
        "inlet valve": ("the tub does not fill and the cycle stops after a minute", "water keeps running in with the door closed"),
        "heating element": ("dishes come out cold and wet", "the tub gets too hot and the cycle aborts"),
        "circulation pump": ("the spray arms do not turn", "a loud rattle during the main wash"),
        "door latch": ("the cycle will not start although the door is shut", "the door unlocks in the middle of a wash"),
        "turbidity sensor": ("every wash runs the longest programme", "the rinse phase is skipped"),
    }),
    "washing machine": ("Brisk", ["W-220", "W-240", "W-310", "W-330", "W-410"], {
        "drum motor": ("the drum does not turn at all", "the drum spins in bursts and stops"),
        "drain pump": ("the laundry comes out soaking wet", "the machine drains very slowly"),
        "door lock": ("the door stays locked after the programme", "the programme will not start, the lock clicks"),
        "pressure sensor": ("the machine overfills with water", "the machine fills only a little and stops"),
        "heater": ("the wash water stays cold", "the water gets far hotter than the programme"),
        "control board": ("the display stays dark", "the buttons do nothing while the display is on"),
    }),
    "router": ("Aquila", ["AR-200", "AR-250", "AR-300", "AR-350", "AR-500"], {
        "power supply": ("the router restarts every few minutes", "the router will not power on"),
        "radio module": ("the wireless network disappears", "wireless clients connect but get no traffic"),
        "fan": ("the router gets very hot and slows down", "the fan is loud all the time"),
        "WAN port": ("no internet although the cable is plugged in", "the uplink drops several times an hour"),
        "firmware image": ("the router stays in recovery mode after an update", "settings are lost after every restart"),
        "clock battery": ("the clock resets to 2000 after a power cut", "certificates are reported as not yet valid"),
    }),
    "label printer": ("Petra", ["P300", "P310", "P400", "P420", "P500"], {
        "print head": ("labels print with white streaks", "the print is faint on one side"),
        "cutter": ("labels are not cut off", "the cutter jams halfway through a label"),
        "platen roller": ("labels slip and print stretched", "the roller squeaks and labels skew"),
        "gap sensor": ("the printer feeds blank labels", "the printer stops between labels"),
        "ribbon sensor": ("the printer says the ribbon is out although it is full", "the ribbon wrinkles while printing"),
        "feed motor": ("the printer does not feed at all", "the paper feeds in jerks"),
    }),
    "heat pump": ("Orrin", ["OH-7", "OH-9", "OH-12", "OH-14"], {
        "compressor": ("the house stays cold although the unit runs", "the outdoor unit trips the breaker when it starts"),
        "expansion valve": ("the outdoor coil ices over quickly", "the flow temperature swings up and down"),
        "outdoor fan": ("the outdoor fan does not turn", "the outdoor fan runs at full speed all the time"),
        "defrost sensor": ("the unit never defrosts and ices up", "the unit defrosts every few minutes"),
        "flow switch": ("the unit stops and reports no water flow", "the circulation runs but the unit will not start"),
        "inverter board": ("the unit starts and stops in a loop", "the compressor runs only at one speed"),
    }),
}

FAILURES = (
    ("did not respond", "the controller asked the {c} to act and got no answer within the time allowed",
     "Switch the {t} off at the mains for a minute and check the {c}'s connector for corrosion or a loose plug. "
     "If the code returns, replace the {c} (part {p})."),
    ("reported a value out of range", "the {c} answered, but with a reading the controller treats as implausible",
     "Check the wiring harness between the {c} and the control board for chafing, then run the service test "
     "programme. If the reading stays out of range, replace the {c} (part {p})."),
)
CAUSES = ["a loose connector", "a pinched cable", "limescale", "a failed part", "moisture in the plug",
          "a worn bearing", "a blown fuse on the board", "dirt in the housing"]
TECHS = ["Mara Ilves", "Tomas Keller", "Ines Varga", "Joon Park", "Ada Okafor", "Leif Brandt", "Sofia Marin",
         "Rui Tavares"]

CODE_Q = ["what does error {code} mean", "my {t} shows {code}, what now", "{code} keeps coming back on the {t}",
          "{b} {t} stuck with code {code}", "how do I clear {code}", "fault {code} after a power cut"]
PART_Q = ["which models take part {p}", "where does part {p} go", "is {p} the right spare part",
          "replacement part number {p}", "what is part {p} for"]
SYM_Q = ["{b} {m}: {s}", "my {m} {t}, {s}", "{s} on the {m}", "{m} problem: {s}"]


def article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def build(rng: random.Random) -> tuple[list[dict], list[dict], list[tuple[str, str, int]]]:
    docs: list[dict] = []
    articles: list[dict] = []  # one per (model, component, failure), with what queries need
    codes = iter(rng.sample(range(1100, 9900), 400))
    parts = iter(rng.sample(range(100, 1000), 200))
    for t, (brand, models, comps) in LINES.items():
        for m in models:
            for c, symptoms in comps.items():
                p = f"{next(parts)}-{rng.randrange(1000, 10000)}"
                used = []
                for (what, why, fix), s in zip(FAILURES, symptoms, strict=True):
                    code = f"E-{next(codes)}"
                    a = {"_id": f"kb{len(articles) + 1:03d}", "title": f"{code}: {brand} {m} {c} {what}",
                         "text": f"Error {code} on the {brand} {m} {t} means {why.format(c=c)}. Typical sign: {s}. "
                                 + fix.format(c=c, t=t, p=p),
                         "topic": t, "year": rng.randrange(2018, 2025)}
                    docs.append(a)
                    meta = {"id": a["_id"], "code": code, "part": p, "t": t, "b": brand, "m": m, "s": s, "notes": []}
                    articles.append(meta)
                    used.append(meta)
                docs.append({"_id": f"pc{len(docs) + 1:03d}", "title": f"Part {p}: {c} for the {brand} {m}",
                             "text": f"Spare part {p} is the {c} of the {brand} {m} {t}. It fits only the {m}; other "
                                     f"{brand} models use their own {c}. Replaces the {c} named in the troubleshooting "
                                     f"articles for error {used[0]['code']} and error {used[1]['code']}.",
                             "topic": t, "year": rng.randrange(2018, 2025)})
                for u in used:
                    u["catalogue"] = docs[-1]["_id"]
    for a in rng.sample(articles, len(articles) * 2 // 5):  # field notes for two articles in five
        n = f"FN-{rng.randrange(1000, 10000)}"
        d = {"_id": f"fn{len(docs) + 1:03d}", "title": f"Field note {n}: {a['code']} on {article(a['b'])} {a['b']} {a['m']}",
             "text": f"Technician {rng.choice(TECHS)} on {article(a['b'])} {a['b']} {a['m']} {a['t']} showing error {a['code']}: the "
                     f"customer said {a['s']}. The cause was {rng.choice(CAUSES)}; after the repair the code did "
                     "not return.", "topic": a["t"], "year": rng.randrange(2018, 2025)}
        docs.append(d)
        a["notes"].append(d["_id"])
    order = rng.sample(articles, len(articles))
    train_targets, test_targets = order[:N_TRAIN], order[N_TRAIN:N_TRAIN + N_TEST]
    queries: list[dict] = []
    qrels: list[tuple[str, str, int]] = []
    for split, targets in (("train", train_targets), ("test", test_targets)):
        for i, a in enumerate(targets):
            kind = KINDS[i % len(KINDS)]
            qid = f"q{len(queries) + 1:03d}"
            fields = {"code": a["code"], "p": a["part"], "t": a["t"], "b": a["b"], "m": a["m"], "s": a["s"]}
            text = rng.choice({"code": CODE_Q, "part": PART_Q, "symptom": SYM_Q}[kind]).format(**fields)
            queries.append({"_id": qid, "text": text, "split": split, "kind": kind})
            if split == "test":
                if kind == "code":
                    qrels += [(qid, a["id"], 2)] + [(qid, n, 1) for n in a["notes"]]
                elif kind == "part":
                    same = [b["id"] for b in articles if b["part"] == a["part"]]
                    qrels += [(qid, a["catalogue"], 2)] + [(qid, b, 1) for b in same]
                else:
                    qrels.append((qid, a["id"], 2))
    return docs, queries, qrels


def main() -> None:
    docs, queries, qrels = build(random.Random(SEED))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (OUT / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (OUT / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels),
                                   encoding="utf-8")
    print(f"{len(docs)} documents, {len(queries)} queries ({N_TRAIN} train, {N_TEST} test), {len(qrels)} judgments")


if __name__ == "__main__":
    main()
