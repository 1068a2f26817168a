"""The API's routers, one module per resource; each route parses, authorises, calls one function, shapes."""
