"""Read and write images and medical volumes as float tensors in [0, 1].

Images (``images.py``): PNG, JPEG, TIFF and BMP, 8/16-bit, gray/RGB/RGBA/palette.
Volumes (``volumes.py``): NIfTI, DICOM and fastMRI ``.h5`` as (S, 1, H, W) slice stacks;
NIfTI and DICOM written back as NIfTI, restored.
Errors name the file; writes are atomic.
"""

from restorekit.io.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    MAX_PIXELS_ENV,
    ImageInfo,
    ImageReadError,
    decode_image,
    list_images,
    read_image,
    read_image_info,
    write_image,
)
from restorekit.io.volumes import (
    is_dicom,
    nifti_stem,
    read_nifti_slices,
    read_volume,
    volume_name,
    write_nifti_slices,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS_ENV",
    "ImageInfo",
    "ImageReadError",
    "decode_image",
    "is_dicom",
    "list_images",
    "nifti_stem",
    "read_image",
    "read_image_info",
    "read_nifti_slices",
    "read_volume",
    "volume_name",
    "write_image",
    "write_nifti_slices",
]
