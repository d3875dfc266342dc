"""Datasets: what each one is and how it is held on a trial's device.

- ``loader``: the registry, ``load_dataset`` (whole tensors on the device, cached) and
  on-device augmentation

Import the module you need (this package imports nothing).
"""
