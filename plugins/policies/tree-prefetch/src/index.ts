// @hmmsim/policy-tree-prefetch public surface.
export {
  TREE_PREFETCH_VARIANTS,
  POLICY_NAME,
  PLUGIN_NAME,
  TreePrefetchPolicyPlugin,
  TreePrefetcher,
  treePrefetchPolicySpec,
  type RandomSource,
  type TreePrefetchPolicySpec,
  type TreePrefetchVariant,
} from "./tree-prefetch.js";
export {
  BIG_PAGE_PAGES,
  BitmapTree,
  UVM_PREFETCH_MIN_FAULTS_DEFAULT,
  UVM_PREFETCH_MIN_FAULTS_MAX,
  UVM_PREFETCH_MIN_FAULTS_MIN,
  UVM_PREFETCH_THRESHOLD_DEFAULT,
  bigPageRegionSubset,
  buildBitmapTree,
  computePrefetchMask,
  computePrefetchRegion,
  growFaultGranularity,
  initBitmapTreeFromRegion,
  maxPrefetchRegion,
  updateBitmapTreeFromVaBlock,
  uvmPrefetchRegion,
  type BlockMasks,
  type PageRegion,
} from "./bitmap-tree.js";
export { BASIC_BLOCKS, randomPages, sequentialLocalRegion, tbnLeaves, tbnRegion, traverseAndFillLpTree, type VariantMasks } from "./uvmsmart.js";
