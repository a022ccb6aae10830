"""Code shared by the edgefill functions. Imports none of them."""
