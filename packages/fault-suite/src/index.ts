// The fault suite has no runtime surface: its scenarios are src/*.int.test.ts.
export {};
