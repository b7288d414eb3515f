/**
 * Per-machine hooks owned by a subsystem (webpack's lib/util/createHooksRegistry.js): a WeakMap keyed by the
 * machine, filled lazily with a frozen hooks object, so the machine never knows every subsystem's hooks and two
 * machines never share taps.
 *
 *   const registry = createHooksRegistry(() => Object.freeze({ shouldMigrate: new SyncBailHook<[Range], boolean | undefined>(["range"]) }));
 *   export const MyDriver = { getHooks: (machine: Machine) => registry(machine) };
 */
export function createHooksRegistry<K extends object, H extends object>(createHooks: (owner: K) => H): (owner: K) => H {
  const map = new WeakMap<K, H>();
  return (owner: K): H => {
    let hooks = map.get(owner);
    if (hooks === undefined) {
      hooks = Object.freeze(createHooks(owner));
      map.set(owner, hooks);
    }
    return hooks;
  };
}
