// Type-aware lint for harness/, test/ and bench/ (typescript-eslint's recommended type-checked rules).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "results/", "**/*.c"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // An `async` body without await implements a Promise-returning interface (workload kinds, test
      // fakes) and turns a throw into a rejection: deliberate, and all over the harness and tests.
      "@typescript-eslint/require-await": "off",
      // `const { drop: _drop, ...rest } = x` is how a key is left out of a copy.
      "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },
  {
    files: ["test/**"],
    rules: {
      // vitest types its asymmetric matchers (expect.any, stringMatching, ...) as `any` on purpose, so each
      // one in an expected object is flagged; the other no-unsafe-* rules still catch an `any` being used.
      "@typescript-eslint/no-unsafe-assignment": "off",
    },
  },
);
