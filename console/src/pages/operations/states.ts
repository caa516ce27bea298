// What an operation's state allows and how it reads, shared by the list, the detail view and
// the embeddable progress component.
import { ErrorClass, OperationState, OperationType, type Operation } from "@flotilla-dev/client/v1";
import { enumLabel } from "../../ui/format";

const TERMINAL = new Set([OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED]);

export function isTerminal(state: OperationState): boolean {
  return TERMINAL.has(state);
}

/** The server says whether it can still be stopped; a finished operation never can. */
export function canCancel(op: Operation): boolean {
  return op.cancellable && !isTerminal(op.state);
}

/** RetryOperation restarts FAILED operations only (FAILED_PRECONDITION NOT_FAILED otherwise). */
export function canRetry(op: Operation): boolean {
  return op.state === OperationState.FAILED;
}

export function stateLabel(state: OperationState): string {
  return enumLabel(OperationState, state, "OPERATION_STATE_");
}

export function typeLabel(type: OperationType): string {
  return enumLabel(OperationType, type, "OPERATION_TYPE_");
}

export function errorClassLabel(c: ErrorClass): string {
  return enumLabel(ErrorClass, c, "ERROR_CLASS_");
}

/** The colour class of a state: ok (done), bad (failed), warn (retrying, cancelling). */
export function stateClass(state: OperationState): string {
  switch (state) {
    case OperationState.SUCCEEDED:
      return "ok";
    case OperationState.FAILED:
      return "bad";
    case OperationState.ERROR_RETRYING:
    case OperationState.CANCELLING:
    case OperationState.CANCELLED:
      return "warn";
    default:
      return "";
  }
}

/** Every named value of a numeric enum but UNSPECIFIED, for filter pickers. */
export function enumValues(e: Record<string, string | number>): number[] {
  return Object.values(e).filter((v): v is number => typeof v === "number" && v !== 0);
}
