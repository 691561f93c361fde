"""The Content-Security-Policy header, on what a browser renders."""

from csp.middleware import CSPMiddleware

# API answers are data, never rendered as a page (and sent with nosniff): building and sending a
# policy for each of them would cost every API call for nothing.
_DATOS = ("application/json", "application/problem+json")


class PoliticaContenidoMiddleware(CSPMiddleware):
    def process_response(self, request, response):
        if response.get("Content-Type", "").startswith(_DATOS):
            return response
        return super().process_response(request, response)
