"""Examples that ship with the wheel, so the Quickstart needs nothing but edgelite: real images to convert and
verify with, and a model to start from (``edgelite example``)."""
