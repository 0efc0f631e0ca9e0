"""Usage metering: one record per request that reached an engine, never lost."""
