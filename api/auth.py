"""Authentication and tenant scoping of every data endpoint, and the request's `as_of`.

`Authorization: Bearer <key>` is required. A tenant key sees its own tenant only: a `tenant_id`
query parameter naming another tenant answers 404 (existence is not revealed). An ops key must
name the tenant with `?tenant_id=` (422 `invalid_parameter`, field `tenant_id`, if missing).
The ingest watermark behind `as_of` is read in the same round trip as the key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import AS_OF_READ, Conn, read_as_of, watermark_column
from api.errors import invalid_parameter, not_found, unauthorized
from domain.contracts import TENANT_PATTERN
from storage.keys import find_key_with

bearer = HTTPBearer(auto_error=False, description="An incidentflow API key: `ifk_<id>_<secret>`.")

TenantParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        pattern=TENANT_PATTERN,
        description="The tenant to read; required with an ops key, optional with a tenant key.",
        examples=["acme"],
    ),
]


async def tenant_scope(
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    tenant_id: TenantParam = None,
) -> str:
    """The tenant this request reads. Raises ApiError 401, 404 or 422 as described above."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized()
    conn.info.pop(AS_OF_READ, None)
    found = await find_key_with(conn, credentials.credentials, watermark_column())
    if found is None:
        raise unauthorized()
    scope, (watermark,) = found
    conn.info[AS_OF_READ] = watermark
    if scope.tenant_id is not None:
        if tenant_id is not None and tenant_id != scope.tenant_id:
            raise not_found("no such tenant")
        return scope.tenant_id
    if tenant_id is None:
        raise invalid_parameter("tenant_id", "tenant_id is required with an ops key")
    return tenant_id


Tenant = Annotated[str, Depends(tenant_scope)]
"""Use as a parameter type: `tenant: Tenant`."""


async def request_as_of(conn: Conn) -> datetime:
    """`as_of` (UTC) of the request; see `api.deps.read_as_of`."""
    return await read_as_of(conn)


AsOf = Annotated[datetime, Depends(request_as_of)]
"""Use as a parameter type after `tenant: Tenant` (dependencies resolve in parameter order):
`as_of` is then the watermark read with the key, with no query of its own."""
