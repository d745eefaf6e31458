"""Detection models: plain ``nn.Module``s built by factories and named by presets in MODELS.

Importing this package imports torch and registers every built-in preset:
``ae_l2``, ``ae_ssim``, ``unet_ae``, ``vae`` (anomaly), ``resnet18``, ``densenet121`` (classifier),
``unet`` (segmenter), ``draem`` (anomaly, trained on synthetic anomalies), ``anogan``,
``fanogan``, ``dcgan``, ``ganomaly`` (GAN family, own training step), ``kmeans``, ``birch``
(clustering of CNN features),
``ssdlite``, ``fasterrcnn`` (detector).
"""

try:
    import torch  # noqa: F401
    import torchvision  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    from synthgen.errors import MissingDependency

    raise MissingDependency("training and detection", "torch", "torch and torchvision") from err

# Importing the model modules registers their presets.
from synthgen.detect.models import autoencoder, classifier, detectors, unet, vae  # noqa: F401, I001
from synthgen.detect.models import clustering, draem, gan, ganomaly  # noqa: F401
from synthgen.detect.models.autoencoder import ConvAutoencoder, ssim, ssim_map
from synthgen.detect.models.classifier import ImageClassifier
from synthgen.detect.models.registry import (
    KINDS,
    MODELS,
    ModelSpec,
    build_model,
    get_spec,
    model_names,
    register_model,
)

__all__ = [
    "KINDS",
    "MODELS",
    "ConvAutoencoder",
    "ImageClassifier",
    "ModelSpec",
    "build_model",
    "get_spec",
    "model_names",
    "register_model",
    "ssim",
    "ssim_map",
]
