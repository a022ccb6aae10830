"""edge_origin_request function package."""
