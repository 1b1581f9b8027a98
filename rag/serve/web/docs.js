// The API docs (Swagger UI, served by rag serve itself): "Try it out" sends the page's token,
// as the web page does (rag/serve/security.py). An external script: the page allows no inline one.
"use strict";

const TOKEN = document.querySelector('meta[name="rag-token"]').content;
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  requestInterceptor: (request) => { request.headers["X-RAG-Token"] = TOKEN; return request; },
});
