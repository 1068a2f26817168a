"""The ground every layer stands on: settings, structured logging, the embedded services and the database
connection helper. It imports no other package of infrawatch."""
