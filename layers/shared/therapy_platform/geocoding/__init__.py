"""The geocoding service (schema `geocoding_service`): geocode with a cache, reverse, postcode
info and distance, over the shared locate chain of therapy_platform.platform.geography."""
