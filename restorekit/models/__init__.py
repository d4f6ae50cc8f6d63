"""Model zoo: restoration architectures, discriminators and feature backbones."""
