"""Detection: datasets, models, training engine and evaluation metrics."""
