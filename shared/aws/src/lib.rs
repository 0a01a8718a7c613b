//! AWS adapters for the ports of `ras-domain`.
