"""The demo: a generated miniature of the experiment (synthetic hub data, a tiny pretrained encoder)."""
