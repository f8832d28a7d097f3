"""The OpenAPI document describes every field, example and error status."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.specs import OPTIMIZER_TYPES

#: Schemas owned by FastAPI or core (described where they are defined).
FOREIGN = {"HTTPValidationError", "ValidationError", "TrajectoryRequest"}


def test_every_field_of_our_schemas_is_described(idle_client: TestClient) -> None:
    schemas = idle_client.get("/openapi.json").json()["components"]["schemas"]
    missing = [
        f"{name}.{field}"
        for name, schema in schemas.items()
        if name not in FOREIGN
        for field, sub in schema.get("properties", {}).items()
        if "description" not in sub and "$ref" not in sub
    ]
    assert not missing


def test_submit_has_an_example_per_optimizer_and_lists_its_errors(idle_client: TestClient) -> None:
    operation = idle_client.get("/openapi.json").json()["paths"]["/api/v1/runs"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    types = {example["value"]["optimizer"]["type"] for example in examples.values()}
    assert types == set(OPTIMIZER_TYPES)
    assert {"202", "400", "409", "413", "422", "429"} <= set(operation["responses"])


def test_every_id_route_lists_404(idle_client: TestClient) -> None:
    paths = idle_client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        if "{" in path:
            for method, operation in operations.items():
                assert "404" in operation["responses"], (method, path)
