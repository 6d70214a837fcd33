"""tabular_jax."""
