"""The portal's routes, one module per concern, each an :class:`fastapi.APIRouter`."""
