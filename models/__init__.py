"""Networks and weight-initialization schemes. Knows nothing of Ray, MLflow or HTTP."""
