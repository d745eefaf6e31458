"""Parametric products and CAD import. Each module registers one family in PRODUCTS."""

# Importing the family modules registers them.
from synthgen.products import bottle_cap, cad, capped_bottle, hex_nut, wheel  # noqa: F401
from synthgen.products.base import (
    PRODUCTS,
    ProductType,
    build_product,
    product_defect,
    product_params,
)

__all__ = ["PRODUCTS", "ProductType", "build_product", "product_defect", "product_params"]
