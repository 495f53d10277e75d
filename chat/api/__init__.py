"""REST edge: routes, request schemas, errors and the OpenAPI document."""
