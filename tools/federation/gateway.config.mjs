// Hive Gateway configuration for the regional supervision supergraph (ARS, CERT Santé).
//
//   node node_modules/.bin/hive-gateway supergraph supergraph.graphql \
//       --config-path gateway.config.mjs --host 127.0.0.1 --port 4000
//
// The subgraph decides every field itself from the caller's session, so the router forwards the
// caller's Authorization header, and nothing else, to the subgraphs. No landing page, no GraphiQL,
// no introspection: the supergraph is known to its clients, not discovered.
import { defineConfig } from "@graphql-hive/gateway";

export const gatewayConfig = defineConfig({
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const authorization = request.headers.get("authorization");
      return authorization ? { authorization } : {};
    },
  },
  landingPage: false,
  graphiql: false,
  disableIntrospection: { disableIf: () => true },
});
