"""Networks and weight-initialization schemes. Knows nothing of Ray, MLflow or HTTP.

- ``create_model(name, *, in_shape, num_classes, **options)`` over the ``MODELS`` registry;
  ``model_options(name)`` lists a model's options with their defaults.
- ``apply_init(model, scheme, scale=1.0)`` over the ``INIT_SCHEMES`` registry.
"""

from models.init import INIT_SCHEMES, NORM_LAYERS, WEIGHT_LAYERS, apply_init
from models.options import ModelOptionError
from models.registry import MODELS, create_model, model_options

__all__ = [
    "INIT_SCHEMES",
    "MODELS",
    "NORM_LAYERS",
    "WEIGHT_LAYERS",
    "ModelOptionError",
    "apply_init",
    "create_model",
    "model_options",
]
