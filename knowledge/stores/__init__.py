"""Vector stores: where chunk vectors are searched, one interface, one module per backend."""
