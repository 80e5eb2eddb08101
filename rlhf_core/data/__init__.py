"""Standard schemas, loaders per source, cleaning with quarantine, and RM-file builders."""
