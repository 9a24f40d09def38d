"""Built-in feedback models (the :class:`rf_mcp.ports.Scorer` port); :mod:`rf_mcp.factory` picks one."""
