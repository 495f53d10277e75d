import "./style.css";
import { render } from "preact";
import { App } from "./app";
import { restoreSession, start } from "./store";

const saved = restoreSession();
render(<App />, document.getElementById("app") as HTMLElement);
if (saved) void start(saved);
