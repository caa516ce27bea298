// The generated google.rpc messages: Status, Code and the error details ("@flotilla-dev/client/google/rpc").
export * from "./gen/google/rpc/code_pb.js";
export * from "./gen/google/rpc/error_details_pb.js";
export * from "./gen/google/rpc/status_pb.js";
