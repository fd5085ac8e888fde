import type { CodegenConfig } from "@graphql-codegen/cli";

// Types of the gateway's schema (exported by `python -m panicsafe.gateway.schema_export web/schema.graphql`)
// and of the operations in src/api/operations.ts.
const config: CodegenConfig = {
  schema: "schema.graphql",
  documents: ["src/api/operations.ts"],
  generates: {
    "src/api/generated.ts": {
      plugins: ["typescript-operations"],
      config: {
        enumsAsTypes: true,
        avoidOptionals: { field: true, inputValue: false, object: true },
        scalars: { DateTime: "string", JSON: "Record<string, unknown>", ID: "string" },
        skipTypename: true,
      },
    },
  },
};
export default config;
