"""HTTP layer: dependencies, error handling, OpenAPI, one router per resource."""
