"""One module per data source family; each registers its loaders and builders."""
