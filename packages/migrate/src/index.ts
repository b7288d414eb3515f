// @hmmsim/migrate public surface: mm/migrate_device.c, include/linux/migrate.h, and make_device_exclusive
// (mm/rmap.c), with the rmap/migrate.c helpers they are built on.
export {
  MIGRATE_PFN_COMPOUND,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_SHIFT,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_ALL,
  MIGRATE_VMA_SELECT_COMPOUND,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  migrateVmaInit,
  mpfnClear,
  mpfnFlags,
  mpfnSet,
  type MigrateVma,
  type MpfnArray,
} from "./migrate-pfn.js";
export {
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDevicePfns,
  migrateDeviceRange,
  migrateVmaCheckPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
} from "./migrate-device.js";
export {
  folioIsolateLru,
  folioMigrateFlags,
  folioMigrateMapping,
  folioPutbackLru,
  removeMigrationPtes,
} from "./migrate.js";
export {
  GUP_PIN_COUNTING_BIAS,
  folioMaybeDmaPinned,
  folioTryShareAnonRmapPte,
  rmapWalk,
  tryToMigrate,
  type RmapOne,
} from "./rmap.js";
export { getUserPageWrite, makeDeviceExclusive } from "./make-device-exclusive.js";
export { installMigrateDeviceCoherentFolio, migrateDeviceCoherentFolio } from "./migrate-device-coherent.js";
