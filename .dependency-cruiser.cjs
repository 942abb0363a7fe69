// The layers of harness/, along the pipeline, top first. A file may import from its own layer
// or a lower one, never a higher one, and no import cycle is allowed anywhere in harness/.
// `npx depcruise harness` checks it by hand; test/unit/layers.test.ts keeps it in `npm test`.
/** @type {Array<{ name: string; path: string }>} top first */
const layers = [
  { name: "L8-cli", path: "^harness/cli(-help)?\\.ts$" },
  { name: "L7-commands", path: "^harness/commands/" },
  { name: "L6-engines", path: "^harness/bisect/" },
  { name: "L5-run", path: "^harness/(run|vfio)/" },
  { name: "L4-outcomes", path: "^harness/(classify|history|report)/" },
  { name: "L3-inputs", path: "^harness/(scenario|kernels|image|guest|workloads)/" },
  { name: "L2-processes", path: "^harness/(qemu|virtiofs)/" },
  { name: "L1-host", path: "^harness/(debian|host)/" },
  { name: "L0-base", path: "^harness/(types\\.ts|arch\\.ts|util/)" },
];

// Orders inside one layer, top first: each folder may import the ones after it, not before it.
// L4: a report shows history and outcomes; history compares outcomes. L3: a scenario names its
// workloads; a workload runs commands in a guest and the programs the image installs there; a
// guest boots an image.
const within = [
  { name: "L4", order: ["^harness/report/", "^harness/history/", "^harness/classify/"] },
  { name: "L3", order: ["^harness/scenario/", "^harness/workloads/", "^harness/guest/", "^harness/image/"] },
];

const upward = layers.slice(1).map((layer, i) => ({
  name: `${layer.name}-imports-higher-layer`,
  comment: `${layer.name} may import only its own layer and lower ones`,
  severity: "error",
  from: { path: layer.path },
  to: {
    path: layers
      .slice(0, i + 1)
      .map((l) => l.path)
      .join("|"),
  },
}));

const inside = within.flatMap(({ name, order }) =>
  order.slice(1).map((folder, i) => ({
    name: `${name}-${folder.replace(/^\^harness\/|\/$/g, "")}-imports-higher-folder`,
    comment: `inside ${name}, ${order.join(" > ")}: a folder imports only those after it`,
    severity: "error",
    from: { path: folder },
    to: { path: order.slice(0, i + 1).join("|") },
  })),
);

const l3 = "^harness/(scenario|workloads|guest|image)/";
const kernels = [
  {
    name: "L3-kernels-imports-other-inputs",
    comment: "kernels/ stands apart in L3: it may import scenario/ types only, and nothing else of L3",
    severity: "error",
    from: { path: "^harness/kernels/" },
    to: { path: "^harness/(workloads|guest|image)/" },
  },
  {
    name: "L3-kernels-imports-scenario-values",
    comment: "kernels/ may import scenario/ types only (prefer types.ts)",
    severity: "error",
    from: { path: "^harness/kernels/" },
    to: { path: "^harness/scenario/", dependencyTypesNot: ["type-only"] },
  },
  {
    name: "L3-imports-kernels",
    comment: "kernels/ stands apart in L3: the rest of L3 does not import it",
    severity: "error",
    from: { path: l3 },
    to: { path: "^harness/kernels/" },
  },
];

const anyLayer = layers.map((l) => l.path).join("|");

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "no import cycle in harness/ (type-only imports count too)",
      severity: "error",
      from: { path: "^harness/" },
      to: { circular: true },
    },
    {
      name: "not-in-a-layer",
      comment: "every file of harness/ belongs to a layer (add a new folder to the table above)",
      severity: "error",
      from: { path: "^harness/", pathNot: anyLayer },
      to: {},
    },
    {
      name: "orphan-not-in-a-layer",
      comment: "every file of harness/ belongs to a layer, even one nothing imports yet",
      severity: "error",
      from: { orphan: true, path: "^harness/", pathNot: anyLayer },
      to: {},
    },
    {
      name: "to-not-in-a-layer",
      comment: "every file of harness/ belongs to a layer (add a new folder to the table above)",
      severity: "error",
      from: { path: "^harness/" },
      to: { path: "^harness/", pathNot: anyLayer },
    },
    {
      name: "not-to-unresolvable",
      comment: "an import the check cannot resolve would be invisible to every other rule",
      severity: "error",
      from: { path: "^harness/" },
      to: { couldNotResolve: true },
    },
    ...upward,
    ...inside,
    ...kernels,
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // `import type` counts: a type-only cycle or upward import is still a wrong dependency.
    tsPreCompilationDeps: true,
    // Resolves the explicit `.ts` extensions (allowImportingTsExtensions) as tsc does.
    tsConfig: { fileName: "tsconfig.json" },
  },
};
