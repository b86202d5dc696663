"""Maps made: reducers (t-SNE, UMAP, PCA) with their cache, how faithful a map is, comparing maps,
clusters, and placing points on a Ray cluster."""
