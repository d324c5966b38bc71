"""The web portal: accounts, the Data Usage Agreement, personal tokens, token-gated
``datalad clone``/``get`` over HTTP, the HTTP API and the audit log.

Modules: :mod:`.tables` and ``migrations/`` (the database), :mod:`.accounts` (registration,
invitations, login, sessions), :mod:`.dua`, :mod:`.tokens`, :mod:`.rights` (who may read
which release), :mod:`.gitserve` (git smart HTTP + annex objects), :mod:`.audit`,
:mod:`.mailer` and :mod:`.app` (the FastAPI application, ``windl serve``).
"""
