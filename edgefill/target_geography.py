"""Which CloudFront price geography a warm target's edge bills in.

A region target is warmed at the edge CloudFront picks for a client in that region (EDNS
client subnet), so it bills in the region's geography. A POP code starts with the IATA
code of its airport (``NRT20-P2`` → NRT, Tokyo). A target this table does not know is
priced in the most expensive geography, so an estimate stays an upper bound, and is
flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from shared.messages import is_pop_code

_REGIONS: Final = {
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-gov-east-1", "us-gov-west-1",
           "ca-central-1", "ca-west-1", "mx-central-1"),
    "eu": ("eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1",
           "eu-south-1", "eu-south-2", "il-central-1"),
    "za-me": ("af-south-1", "me-south-1", "me-central-1"),
    "sa": ("sa-east-1",),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4", "ap-southeast-6"),
    "in": ("ap-south-1", "ap-south-2"),
    "ap": ("ap-east-1", "ap-east-2", "ap-northeast-2", "ap-southeast-1", "ap-southeast-3",
           "ap-southeast-5", "ap-southeast-7"),
}  # fmt: skip
# Airports of CloudFront edge locations, by price geography.
_AIRPORTS: Final = {
    "us": "ATL BNA BOS CMH DEN DFW DTW EWR HIO IAD IAH JAX JFK LAS LAX MCI MIA MSP ORD PDX "
    "PHL PHX PIT SEA SFO SJC SLC TPA YTO YTZ YUL YVR YYC YYZ MEX QRO",
    "eu": "AMS ARN ATH BCN BER BRU BUD CDG CPH DUB DUS FCO FRA HAM HEL IST LHR LIS MAD MAN "
    "MRS MUC MXP OSL OTP PMO PRG SOF TLV TXL VIE WAW ZAG ZRH",
    "za-me": "BAH CPT DOH DXB FJR JED JNB LOS MCT NBO RUH",
    "sa": "BOG EZE FOR GIG GRU LIM SCL",
    "jp": "HND ITM KIX NRT",
    "au": "AKL BNE MEL PER SYD",
    "in": "BLR BOM CCU DEL HYD MAA",
    "ap": "BKK CGK HAN HKG ICN KUL MNL SGN SIN TPE",
}
REGION_GEOGRAPHY: Final = {region: geo for geo, regions in _REGIONS.items() for region in regions}
AIRPORT_GEOGRAPHY: Final = {
    airport: geo for geo, airports in _AIRPORTS.items() for airport in airports.split()
}


def geography_of(target: str, transfer_per_gb: Mapping[str, float]) -> tuple[str, bool]:
    """(geography, known) for ``target``; an unknown target gets the geography with the
    highest data-transfer price and ``known`` False."""
    if is_pop_code(target):
        found = AIRPORT_GEOGRAPHY.get(target[:3])
    else:
        found = REGION_GEOGRAPHY.get(target)
    if found is not None:
        return found, True
    return max(transfer_per_gb, key=lambda geo: transfer_per_gb[geo]), False
