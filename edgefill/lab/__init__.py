"""The lab: the whole edgefill system on loopback, offline (moto, origin, POPs, DNS, pollers)."""
