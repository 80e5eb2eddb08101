"""The offline demo task: a generated miniature world with a gold reward."""
