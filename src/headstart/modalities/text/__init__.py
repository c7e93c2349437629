"""Text: tables and folders of texts -> TextSet, Hugging Face encoders, tokenisation."""
