"""tinygrad_np: reverse-mode autodiff over NumPy."""
