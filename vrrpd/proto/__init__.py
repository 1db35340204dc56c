"""Wire format: constants, Advert, encode/decode, checksums, receive checks."""
