"""Every pipeline stage without Dagster, one module per asset group: data, models, annotation, rl,
evaluation. Each stage declares the config it reads (``base``); its asset in ``assets/`` is a call."""
