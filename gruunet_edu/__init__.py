"""gruunet-edu: a hands-on course on GRUU-Net (Wollmann et al., Medical Image Analysis 2019)."""

__version__ = "0.1.0"
