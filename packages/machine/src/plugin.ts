import type { DependencyContainer } from "tsyringe";
import type { Machine } from "./machine.js";

/**
 * A machine plugin (webpack's `apply` + credo's `register`): a class with a module constant `PLUGIN_NAME`
 * (its `name`), a plain JSON `spec` (the class's static `defaultSpec` when not given), an optional
 * `register(container)` that provides implementations in the machine's child container (by token), and
 * `apply(machine)` that taps hooks. Built-in behaviour is plugins too (`defaultPlugins()`).
 */
export interface MachinePlugin {
  readonly name: string;
  readonly spec?: unknown;
  register?(container: DependencyContainer): void;
  apply(machine: Machine): void;
}

/**
 * A stateful service a plugin registers under the `MachineComponent` token (multi) so that createMachine
 * builds it with constructor injection, then calls `attach(machine)` (tap hooks there) before the plugins'
 * `apply`. `machine.component(Class)` finds it; `dispose()` runs at `machine.dispose()`.
 */
export interface MachineComponent {
  attach?(machine: Machine): void;
  dispose?(): void | Promise<void>;
}
