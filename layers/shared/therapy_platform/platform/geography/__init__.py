"""What every service needs to locate a record in-process: pure location math (`locations`), the
shipped postcode table (`postcodes`), the Nominatim client (`nominatim`), the address models
(`addresses`), the ports (`ports`) and the locate chain with `default_locator()` (`locator`).
The geocoding service (therapy_platform.geocoding) adds its API, use cases and cache on top."""
