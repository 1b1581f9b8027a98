// The API docs (Swagger UI, served by rag serve itself): "Try it out" sends the page's token,
// as the web page does (rag/serve/security.py). An external script: the page allows no inline one.
"use strict";

const TOKEN = document.querySelector('meta[name="rag-token"]').content;
fetch("/openapi.json", { headers: { "X-RAG-Token": TOKEN } })
  .then((r) => r.json())
  .then((spec) => {
    // FastAPI writes OpenAPI 3.1; the bundled Swagger UI (4.x) reads 3.0 only, and shows
    // this schema well enough when told it is one
    spec.openapi = "3.0.3";
    window.ui = SwaggerUIBundle({
      spec,
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
      requestInterceptor: (request) => { request.headers["X-RAG-Token"] = TOKEN; return request; },
    });
  });
