"""Maps explored: filters, selections, mistakes, one point up close, figures, large-map layers, exports."""
